"""The agent core: configuration, the turn loop, the model adapter, tools and their policy."""
