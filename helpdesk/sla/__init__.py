"""Service levels: targets per priority, business hours, the clocks of each conversation and their check."""
