"""stnlib: an executable reproduction of Finnveden, Jansson & Lindeberg (2020)."""

__version__ = "0.1.0"
