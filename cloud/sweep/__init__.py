"""`python -m cloud sweep`: many retrainings from one command, compared in one table and chart."""
