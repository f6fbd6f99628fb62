"""Pieces shared by the `asv` subcommands."""


class CliError(Exception):
    """A user-facing error: printed as one line `asv: error: <message>`, exit status 2."""


FASTDDS_PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


def with_fastdds_profile(environ: dict) -> dict:
    """``environ`` with the project's Fast DDS profile (config/fastdds.xml: shared memory
    large enough for camera frames) unless the user chose a profile file already."""
    if FASTDDS_PROFILE_VARIABLE not in environ:
        from asv_autonomy.cli.launch_xml import find_package_share
        profile = find_package_share('asv_autonomy') / 'config' / 'fastdds.xml'
        if profile.is_file():
            environ = dict(environ, **{FASTDDS_PROFILE_VARIABLE: str(profile)})
    return environ
