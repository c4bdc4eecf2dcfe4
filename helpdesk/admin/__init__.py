"""The admin pages (agents, teams, canned responses, SLA and hours, channels) and the few admin
actions that reach across domains (renaming a team everywhere its name is kept)."""
