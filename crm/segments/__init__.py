"""Segments of contacts and companies: definitions compiled to SQL, saved segments, snapshots and analytics."""
