"""The scheduler daemon, run history and the newsvault command line."""
