S=peerload
$S simulate --flood 20000 --top 8 --ttl 5s --policies peerload-herd,herd/cap=4,herd/w=rate/cap=4,seen/w=2/cap=4 > flood-lab1.txt 2>&1
F=peerload-herd,herd/cap=4,seen/w=2/cap=4,seen/w=rate/cap=4
R=round-robin,random,peerload,peerload-herd,oracle,seen/w=2/cap=4/top=8/ttl=5s,seen/write=5s/w=2/cap=4/top=8/ttl=5s
$S simulate --seeds 5 --sweep-top 5,8,10 --sweep-ttl 3s,5s --policies $F > lab1-final.txt 2>&1
$S simulate --seeds 5 --policies $R > lab1-ref.txt 2>&1
$S simulate --machines 20 --cores 8 --util 40% --seeds 5 --policies $R > lab2-ref.txt 2>&1
$S simulate --machines 120 --cores 4 --util 85% --burst 80 --seeds 5 --policies $R > lab3-ref.txt 2>&1
$S simulate --machines 120 --cores 4 --util 85% --burst 80 --seeds 5 --sweep-top 8,10 --sweep-ttl 3s,5s --policies $F > lab3-final.txt 2>&1
