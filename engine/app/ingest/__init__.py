"""Importers: recorded market data into session journals."""
