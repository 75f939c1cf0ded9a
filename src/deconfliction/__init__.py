"""deconfliction: keep the forces of states sharing an operating area from clashing by accident."""
