"""The executor service: a stateless worker pool leasing step tasks from the scheduler."""
