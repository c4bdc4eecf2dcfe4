"""The admin training loop: the NLU training set in the database, the review queue of messages the
bot missed, background retraining with a side-by-side comparison, and switching models live."""
