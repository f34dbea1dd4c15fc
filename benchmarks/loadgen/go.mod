module smartfarm/loadgen

go 1.23
