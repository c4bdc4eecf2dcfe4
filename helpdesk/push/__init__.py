"""Web Push to the agents' browsers (VAPID): the server's key pair, the agents' subscriptions, and the
background delivery of a short notification when a conversation needs them while the inbox is closed."""
