"""Developer tools for working on hwlab_sql."""
