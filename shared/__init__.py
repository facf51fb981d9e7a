"""Code shared by the API and the workers: settings, ids, the database schema and the blob store."""
