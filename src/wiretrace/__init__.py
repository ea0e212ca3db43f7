"""wiretrace: which wire story an article derives from, how much, and where."""
