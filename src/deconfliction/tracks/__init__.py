"""The live picture: track states from feeds and officers, tactical alerts."""
