"""The web chat channel's HTTP side: visitor sessions, the socket, the widget script and a demo page."""
