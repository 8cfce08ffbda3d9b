"""Notifications: the notification centre (groups, unread counts, settings) and the email digest."""
