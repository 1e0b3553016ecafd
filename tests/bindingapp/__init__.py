"""A Django app for the data binding tests: models, bindings, a view, routing."""
