"""The email channel's own records: which mail (by Message-ID) belongs to which customer's thread."""
