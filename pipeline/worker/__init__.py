"""The Faust layer: the worker app, its agents and the Faust patches. Nothing outside
this package imports Faust (checked by import-linter, `make lint`)."""
