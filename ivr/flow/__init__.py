"""Call flows as data: schema, loading, checking and diagrams of flows/*.yaml."""
