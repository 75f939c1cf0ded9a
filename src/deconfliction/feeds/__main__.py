"""``python -m deconfliction.feeds FD``: the feed process the server starts (``feeds.process``)."""

from deconfliction.feeds.process import main

main()
