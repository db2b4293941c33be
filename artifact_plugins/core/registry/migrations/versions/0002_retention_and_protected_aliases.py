"""retention policies, protected aliases, run group names, keyed distributed parts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("group_name", sa.String(length=512), nullable=True))
    with op.batch_alter_table("parts") as batch:
        batch.add_column(sa.Column("part_key", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_parts_version_id", "versions", ["version_id"], ["id"])
    op.create_table(
        "retention_policies",
        sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id"), primary_key=True),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("keep_within_seconds", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "protected_aliases",
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("alias", sa.String(length=128), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("protected_aliases")
    op.drop_table("retention_policies")
    with op.batch_alter_table("parts") as batch:
        batch.drop_constraint("fk_parts_version_id", type_="foreignkey")
        batch.drop_column("version_id")
        batch.drop_column("part_key")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("group_name")
