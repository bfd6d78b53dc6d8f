"""One module per console page (not named `pages`: Streamlit would run such a folder beside
its script as pages of their own); each has ``render(ctx)``."""
