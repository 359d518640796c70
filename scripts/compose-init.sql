-- compose.yaml: the Unleash server keeps its data in a database of its own.
CREATE DATABASE unleash OWNER config;
