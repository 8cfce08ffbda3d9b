"""Engagement: likes, comments and saves of posts, and their counts."""
