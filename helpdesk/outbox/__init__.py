"""The outbox: outgoing messages queued with the write that produced them, sent in order per chat,
each send's outcome recorded, failed sends retried (see ``service.Outbox``)."""
