P=peerload,peerload-herd,herd/w=rate,seen/w=2,seen/w=rate
peerload simulate --machines 20 --cores 8 --util 40% --seeds 5 --sweep-top 3,5,8 --sweep-ttl 5s,10s,30s --policies $P > /tmp/res/lab2-sweep1.txt 2>&1
peerload simulate --machines 120 --cores 4 --util 85% --burst 80 --seeds 5 --sweep-top 3,5,8 --sweep-ttl 5s,10s,30s --policies $P > /tmp/res/lab3-sweep1.txt 2>&1
