"""Net Promoter Score: the survey asked after a delivery or a resolved conversation, and its answers."""
