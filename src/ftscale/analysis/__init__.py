"""From runs to answers: the tidy tables, the fitting procedure, critical sizes, the tables."""
