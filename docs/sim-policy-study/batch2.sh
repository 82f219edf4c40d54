S=peerload
P1=peerload-herd,herd/w=1,herd/w=3,herd/w=4,herd/decay=30s,herd/w=rate,herd/cap=2,herd/cap=4,herd/w=rate/cap=4,seen/w=1,seen/w=2,seen/w=2/cap=4,seen/w=rate,seen/w=rate/cap=4,seen/dep,plain/age,herd/age,herd/b2=10,seen/b2=10,herd/attl=2s-30s,seen/attl=2s-30s,seen/w=rate/attl=2s-30s
$S simulate --seeds 5 --top 5 --ttl 10s --policies $P1 > lab1-top5-ttl10.txt 2>&1
P2=peermon,plain/write=10s,herd/write=10s,seen/write=10s,seen/write=10s/w=rate,seen/write=10s/w=4,plain/write=30s/ttl=30s,seen/write=30s/ttl=30s/w=rate,seen/write=5s/ttl=5s/w=rate,seen/write=5s/ttl=5s
$S simulate --seeds 5 --top 5 --ttl 10s --policies $P2 > lab1-write.txt 2>&1
