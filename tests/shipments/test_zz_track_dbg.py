import re
def test_dbg(admin_client):
    from tests.shipments.test_estimates import delivered_history, start_line_haul, NOW
    from shipments import estimates
    from shipments.models import Shipment
    from django.urls import reverse
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    start_line_haul("NEW1", NOW)
    s = Shipment.objects.get(tracking_number="NEW1")
    html = admin_client.get(reverse("admin:shipments_shipment_change", args=[s.pk])).content.decode()
    i = html.find("estimate")
    print([m.start() for m in re.finditer("estimate", html)][:5])
    print(html[i-300:i+800])
