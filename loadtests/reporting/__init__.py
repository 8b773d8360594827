"""What reports: charts, report.md/.html, and comparisons of two runs."""
