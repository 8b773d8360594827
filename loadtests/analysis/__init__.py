"""What turns raw records into figures and decisions: steady state, validity, statistics, the verdict."""
