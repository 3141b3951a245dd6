import click


@click.command()
def deploy() -> None:
    """placeholder"""
