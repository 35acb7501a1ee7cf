"""Persistent cache backends: local diskcache, PostgreSQL, Supabase."""
