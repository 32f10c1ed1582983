"""Live market-data feeds, one package per venue: the venue's protocol in, journal events out.

A feed never builds events itself: it hands each received message to the same converter the
venue's importer uses, so a live journal and a file import of the same messages are the same
events (receive times aside), and it journals what happened to its connection.
"""
