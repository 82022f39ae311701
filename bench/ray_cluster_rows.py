# The cluster rows of `rayts microbenchmark --cluster` (bench/src/cluster_rows.ts)
# on Ray, same shapes: a 2-node cluster on this machine (ray.cluster_utils.Cluster:
# a head with 1 CPU and a 2.5 GiB store, one node with N CPUs and a 1.25 GiB
# store, real raylets), the driver on the head, Ray's own timer
# (ray._private.ray_microbenchmark_helpers.timeit). Not part of the package:
#   pip install ray==2.58 numpy && python bench/ray_cluster_rows.py [--warmup-sec 10]
import argparse
import multiprocessing

import numpy as np
import ray
from ray._private.ray_microbenchmark_helpers import timeit
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

GiB = 1024**3
MiB = 1024**2

parser = argparse.ArgumentParser()
parser.add_argument("--warmup-sec", type=float, default=10, help="Ray's idle time before each row")
parser.add_argument("--head-store-gib", type=float, default=2.5, help="the head's object store (Ray may spill below ~3)")
args = parser.parse_args()

cluster = Cluster(
    initialize_head=True,
    head_node_args={"num_cpus": 1, "object_store_memory": int(args.head_store_gib * GiB)},
)
other = cluster.add_node(num_cpus=multiprocessing.cpu_count(), object_store_memory=GiB + 256 * MiB)
cluster.wait_for_nodes()
ray.init(address=cluster.address)
on_other = NodeAffinitySchedulingStrategy(node_id=other.node_id, soft=False)


@ray.remote
def small_value():
    return b"ok"


@ray.remote(num_cpus=0)
class Actor:
    def small_value(self):
        return b"ok"


@ray.remote
def fetch(refs):
    ready, _ = ray.wait(refs, num_returns=len(refs), fetch_local=True, timeout=120)
    assert len(ready) == len(refs)
    return ray.get_runtime_context().get_node_id()


def multi_node_tasks_async():
    ray.get([small_value.options(scheduling_strategy=on_other).remote() for _ in range(1000)])


timeit("multi node tasks async", multi_node_tasks_async, 1000, warmup_time_sec=args.warmup_sec)

a = Actor.options(scheduling_strategy=on_other).remote()


def actor_calls_async():
    ray.get([a.small_value.remote() for _ in range(1000)])


timeit("1:1 actor calls async (actor on the other node)", actor_calls_async, 1000, warmup_time_sec=args.warmup_sec)

objects = [ray.put(np.full(GiB, i + 1, dtype=np.uint8)) for i in range(2)]
state = {"next": 0}


def transfer():
    node = ray.get(fetch.options(scheduling_strategy=on_other).remote([objects[state["next"]]]))
    state["next"] ^= 1
    assert node == other.node_id


timeit("object transfer between nodes gigabytes (1 GiB object)", transfer, GiB / 1e9, warmup_time_sec=args.warmup_sec)

ray.shutdown()
cluster.shutdown()
