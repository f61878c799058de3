DROP TABLE service_clients;
