"""Commands that check and picture the built book (not part of the ``minilib`` library)."""
