"""Dataset layouts that span many files; each module declares ``FORMAT``."""
