"""The agent inbox in the browser: pages, view queries and the live socket (``/inbox``)."""
