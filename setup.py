from setuptools import find_packages, setup

setup(
    name="antenna-pipeline",
    version="0.1.0",
    description="Self-hosted Breakpad/Crashpad crash ingestion: collector, processor, Sentry.",
    packages=find_packages(include=["antenna", "antenna.*", "processor", "processor.*", "testlib"]),
    include_package_data=True,
    package_data={"processor": ["siglists/*"]},
    python_requires=">=3.11",
)
