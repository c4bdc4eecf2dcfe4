"""One search over customers, order codes and message text, accent-insensitive, scoped to the agent."""
