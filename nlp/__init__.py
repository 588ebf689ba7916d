"""French feedback NLP: text preparation, sentiment, themes, topics, trends. No service imports."""
