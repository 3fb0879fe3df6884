"""Run by scripts/demo.sh inside `netbox shell`: the migrations, an admin login, and a small sample when the demo
data is absent. One process for all of it: each NetBox start costs seconds of CPU."""

from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
from django.contrib.auth import get_user_model
from django.core.management import call_command
from ipam.models import IPAddress, Prefix

call_command("migrate", interactive=False, verbosity=0)

User = get_user_model()
admin, _ = User.objects.get_or_create(username="admin")
admin.is_superuser = True
admin.is_active = True
admin.set_password("admin")
admin.save()

if not Site.objects.exists():
    maker, _ = Manufacturer.objects.get_or_create(name="Juniper", slug="juniper")
    dtype, _ = DeviceType.objects.get_or_create(manufacturer=maker, model="MX204", slug="mx204")
    role, _ = DeviceRole.objects.get_or_create(name="Core Switch", slug="core-switch")
    for slug in ("ams1", "fra1", "lon1"):
        site = Site.objects.create(name=slug.upper(), slug=slug, status="active")
        for n in (1, 2):
            Device.objects.create(name=f"core-sw{n}.{slug}", site=site, device_type=dtype, role=role, status="active")
        Prefix.objects.create(prefix=f"10.{len(slug) + n}.{ord(slug[0]) % 200}.0/24", status="active")
    IPAddress.objects.create(address="10.4.97.1/24", status="active", dns_name="core-sw1.ams1")
print(f"Demo ready: {Site.objects.count()} sites, {Device.objects.count()} devices; login admin / admin")
