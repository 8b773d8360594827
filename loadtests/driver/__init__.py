"""What drives a measurement: processes, the load generator, a point, and the searches built on points."""
