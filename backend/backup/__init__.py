"""The backup engine: selection, the per-project backup task, incremental logic, the backup CLI.

It talks to Jira only through backend.jira and to storage only through backend.repository.
"""

from backend.backup.project import ProjectResult, backup_project, fetch_site_objects
from backend.backup.run import RunResult, run_backup, select_projects
from backend.backup.spec import DATA_DEFAULTS, BackupSpec, ProjectSelection, SpecError

__all__ = [
    "DATA_DEFAULTS",
    "BackupSpec",
    "ProjectResult",
    "ProjectSelection",
    "RunResult",
    "SpecError",
    "backup_project",
    "fetch_site_objects",
    "run_backup",
    "select_projects",
]
