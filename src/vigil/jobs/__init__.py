"""Jobs: durable records of long work, and the executors that run them. Knows no domain: handlers register by kind."""
