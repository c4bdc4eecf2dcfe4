"""Attachments: the photos, videos, voice notes and files of messages, kept by CareDesk (their
platform links expire), with thumbnails, served to agents and, through signed links, to visitors."""
