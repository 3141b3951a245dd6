"""`stackwright plan`, `init` and `schema`: look at an inventory before
anything is deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .. import diagram
from .. import plan as plan_mod
from ..main import App, StackwrightError, inventory_argument, load_or_exit
from ..model import Inventory
from ..paths import data_dir
from ..render import cloud_vars

# Starting inventories that deploy as they are (inventories/ha.yml waits for
# the high-availability stack: validate refuses several controllers).
TOPOLOGIES = {"aio": "aio.yml", "multinode": "multinode.yml", "bonded": "fuel-bonded.yml"}


@click.command()
@inventory_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--diagram", "diagram_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw the topology: .svg, .png or .dot (SVG/PNG need Graphviz's dot).")
@click.option("--lab", is_flag=True,
              help="As the built-in lab builds it (userspace OVS datapath, bonds and VLANs through OVS).")
@click.pass_obj
def plan(app: App, inventory: Path, fmt: str, diagram_path: Path | None, lab: bool) -> None:
    """Show what will be built on each node: NIC -> bond -> bridge -> VLAN -> network, SSH, services."""
    inv: Inventory = load_or_exit(app, inventory)
    if lab:
        from ..lab import adapt

        inv = adapt(inv)
    data = plan_mod.build(inv)
    if diagram_path is not None:
        try:
            diagram.render(diagram.to_dot(data, cloud_vars(inv)["networks"]), diagram_path)
        except FileNotFoundError as exc:
            raise StackwrightError(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    for item in _text(data):
        app.console.print(item, soft_wrap=False, highlight=False)
    if diagram_path is not None:
        app.console.print(f"topology drawn in {diagram_path}")


def _text(data: dict[str, Any]) -> list[Any]:
    """The plan as the terminal shows it: a tree per node, what is left out,
    the nodes per role."""
    out: list[Any] = [f"cloud {data['cloud']}: internal endpoints on {data['endpoints']['internal']}, "
                      f"public on {data['endpoints']['public']}"
                      f"{' (HTTPS: HAProxy terminates TLS)' if data['endpoints']['tls'] else ''}; "
                      f"OVS datapath {data['ovs_datapath']}, "
                      f"hypervisor {data['hypervisor']}"]
    for node in data["nodes"]:
        tree = Tree(f"[bold]{node['name']}[/bold] ({', '.join(node['roles'])}) - ssh {node['ssh']}"
                    + (f" via {node['ssh_via']}" if node["ssh_via"] else ""))
        links = tree.add("networks")
        for link in node["links"]:
            links.add(Text(link["chain"], overflow="fold"))
        if node["ovs_bridges"]:
            ovs = tree.add("Open vSwitch")
            for bridge, ports in node["ovs_bridges"].items():
                ovs.add(Text(f"{bridge}: {', '.join(ports)}", overflow="fold"))
        tree.add(Text("services: " + ", ".join(node["services"]), overflow="fold"))
        out.append(tree)
    out += [Text(f"left out: {group}: {reason}", style="yellow") for group, reason in data["left_out"].items()]
    disks = data["instance_storage"]
    out.append(Text(f"instance disks: {disks['disks']}; live migration: {disks['live_migration']}; "
                    f"evacuate: {disks['evacuate']}", overflow="fold"))
    if data["cluster"]:
        out.append(_cluster_tree(data["cluster"]))
    table = Table(title="nodes per role")
    for role in data["totals"]:
        table.add_column(role, justify="right")
    table.add_row(*[str(v) for v in data["totals"].values()])
    return [*out, table]


def _cluster_tree(c: dict[str, Any]) -> Tree:
    """The HA layout: members with their fence devices, VIPs, database,
    brokers, and what HAProxy serves."""
    tree = Tree(f"[bold]cluster[/bold]: {len(c['members'])} members (pacemaker, corosync, HAProxy); a partition "
                f"of {c['quorum']} or more keeps the resources and fences the others")
    members = tree.add("members")
    for m in c["members"]:
        members.add(Text(f"{m['name']}: corosync on {m['corosync']}; fenced by {m['fence'] or 'nothing'}",
                         overflow="fold"))
    vips = tree.add("VIPs (on one member, with HAProxy)")
    for v in c["vips"]:
        vips.add(f"{v['name']} {v['address']} on {v['network']}")
    if len(c["database"]) > 1:
        tree.add(Text(f"database: Galera on {', '.join(c['database'])}; through HAProxy {c['database'][0]} takes "
                      "every connection, the others stand by", overflow="fold"))
    if c["brokers"]:
        tree.add(Text(f"brokers: RabbitMQ on {', '.join(c['brokers'])}", overflow="fold"))
    served = tree.add("HAProxy frontends")
    for f in c["frontends"]:
        served.add(Text(f"{f['name']} :{f['port']} on the internal{' and public' if f['public'] else ''} VIP -> "
                        f"{', '.join(f['backends'])}", overflow="fold"))
    return tree


@click.command()
@click.option("--topology", type=click.Choice(sorted(TOPOLOGIES)), default="aio", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="File to write (default: <topology>.yml in the current directory).")
@click.pass_obj
def init(app: App, topology: str, output: Path | None) -> None:
    """Write a commented starting inventory for a topology; it validates as is."""
    target = output or Path(f"{topology}.yml")
    if target.exists():
        raise StackwrightError(f"{target} already exists; it was left unchanged (choose another -o)")
    source = data_dir() / "inventories" / TOPOLOGIES[topology]
    target.write_text(source.read_text())
    app.console.print(f"wrote {target}; edit it, then `stackwright validate {target}`")


@click.command()
def schema() -> None:
    """Print the JSON Schema of the inventory file (for editor completion)."""
    doc = Inventory.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "Stackwright node inventory"
    click.echo(json.dumps(doc, indent=2))
