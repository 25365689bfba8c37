"""`ladder`: Ladder's command line (console script `ladder = cli.main:main`)."""
